variable "project_id" {
  description = "Google Cloud project id."
  type        = string
}
variable "region" {
  description = "Region of the cluster."
  type        = string
  default     = "europe-west1"
}
variable "cluster_name" {
  description = "Name of the GKE cluster."
  type        = string
  default     = "todo"
}
variable "node_count" {
  description = "Nodes per zone in the node pool."
  type        = number
  default     = 1
}
variable "machine_type" {
  description = "Machine type of the nodes."
  type        = string
  default     = "e2-standard-2"
}
variable "master_authorized_cidr" {
  description = "CIDR allowed to reach the Kubernetes API endpoint."
  type        = string
}
variable "image_repository" {
  description = "Image repository of todo-operator (Artifact Registry)."
  type        = string
}
variable "image_tag" {
  description = "Image tag to deploy (the commit SHA)."
  type        = string
}
variable "rbac_security_group" {
  description = "Google Group (gke-security-groups@YOUR_DOMAIN) whose nested groups get Kubernetes RBAC."
  type        = string
}
