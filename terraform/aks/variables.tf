variable "subscription_id" {
  description = "Azure subscription id."
  type        = string
}
variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}
variable "cluster_name" {
  description = "Name of the AKS cluster and its resource group prefix."
  type        = string
  default     = "todo"
}
variable "node_count" {
  description = "Nodes in the default node pool."
  type        = number
  default     = 2
}
variable "node_vm_size" {
  description = "VM size of the nodes."
  type        = string
  default     = "Standard_D2s_v5"
}
variable "api_server_authorized_ip_ranges" {
  description = "CIDRs allowed to reach the Kubernetes API server."
  type        = list(string)
}
variable "image_repository" {
  description = "Image repository of todo-operator (ACR)."
  type        = string
}
variable "image_tag" {
  description = "Image tag to deploy (the commit SHA)."
  type        = string
}
