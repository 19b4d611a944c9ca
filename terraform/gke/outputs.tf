output "cluster_id" {
  description = "Id of the GKE cluster."
  value       = google_container_cluster.todo.id
}
output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = google_container_cluster.todo.endpoint
}
output "kubeconfig_command" {
  description = "How to get a kubeconfig for the cluster."
  value       = "gcloud container clusters get-credentials ${var.cluster_name} --region ${var.region} --project ${var.project_id}"
}
