output "cluster_id" {
  description = "OCID of the OKE cluster."
  value       = module.oke.cluster_id
}
output "cluster_endpoint" {
  description = "Kubernetes API endpoint of the cluster."
  value       = local.kubeconfig.clusters[0].cluster.server
}
output "kubeconfig" {
  description = "Kubeconfig of the cluster (uses the oci CLI for tokens)."
  value       = data.oci_containerengine_cluster_kube_config.todo.content
  sensitive   = true
}
output "log_group_id" {
  description = "OCID of the OCI Logging log group."
  value       = oci_logging_log_group.todo.id
}
