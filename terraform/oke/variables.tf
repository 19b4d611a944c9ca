variable "tenancy_ocid" {
  description = "OCID of the tenancy."
  type        = string
}
variable "compartment_ocid" {
  description = "OCID of the compartment for the cluster and its network."
  type        = string
}
variable "user_ocid" {
  description = "OCID of the API user Terraform acts as."
  type        = string
}
variable "fingerprint" {
  description = "Fingerprint of the API signing key."
  type        = string
}
variable "private_key_path" {
  description = "Path to the API signing private key (PEM)."
  type        = string
}
variable "region" {
  description = "OCI region, e.g. eu-frankfurt-1."
  type        = string
}
variable "cluster_name" {
  description = "Name of the OKE cluster."
  type        = string
  default     = "todo"
}
variable "kubernetes_version" {
  description = "Kubernetes version of the control plane and the node pool."
  type        = string
  default     = "v1.31.1"
}
variable "image_repository" {
  description = "Image repository of todo-operator (OCIR)."
  type        = string
}
variable "image_tag" {
  description = "Image tag to deploy (the commit SHA)."
  type        = string
}
variable "api_endpoint_allowed_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API endpoint."
  type        = list(string)
  default     = []
}
