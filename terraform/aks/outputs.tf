output "cluster_id" {
  description = "Resource id of the AKS cluster."
  value       = azurerm_kubernetes_cluster.todo.id
}
output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = azurerm_kubernetes_cluster.todo.kube_config[0].host
  sensitive   = true
}
output "kubeconfig" {
  description = "Kubeconfig (Entra ID login through kubelogin)."
  value       = azurerm_kubernetes_cluster.todo.kube_config_raw
  sensitive   = true
}
