# Dapr (mTLS on) and todo-operator, through the Helm provider of the calling configuration.
terraform {
  required_providers {
    helm = { source = "hashicorp/helm" }
  }
}

variable "values_file" {
  description = "The chart's values file for this cloud (values-oke.yaml, values-aks.yaml, values-gke.yaml)."
  type        = string
}
variable "image_repository" {
  description = "Image repository of todo-operator."
  type        = string
}
variable "image_tag" {
  description = "Image tag to deploy (the commit SHA)."
  type        = string
}
variable "namespace" {
  description = "Namespace of todo-operator."
  type        = string
  default     = "todo"
}

resource "helm_release" "dapr" {
  name             = "dapr"
  repository       = "https://dapr.github.io/helm-charts/"
  chart            = "dapr"
  version          = "1.15.4"
  namespace        = "dapr-system"
  create_namespace = true
  atomic           = true
  wait             = true
  set {
    name  = "global.mtls.enabled"
    value = "true"
  }
  set {
    name  = "global.ha.enabled"
    value = "false"
  }
}

resource "helm_release" "todo" {
  name             = "todo-operator"
  chart            = "${path.module}/../../../manifests/helm/todo-operator"
  namespace        = var.namespace
  create_namespace = true
  atomic           = true
  wait             = true
  timeout          = 600
  values           = [file("${path.module}/../../../manifests/helm/todo-operator/${var.values_file}")]
  set {
    name  = "image.repository"
    value = var.image_repository
  }
  set {
    name  = "image.tag"
    value = var.image_tag
  }
  depends_on = [helm_release.dapr]
}

output "release_status" {
  description = "Status of the todo-operator Helm release."
  value       = helm_release.todo.status
}
