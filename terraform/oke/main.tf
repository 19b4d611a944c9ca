# OKE on the always-free tier: 2 x VM.Standard.A1.Flex (2 OCPU, 12 GB each, arm64),
# Dapr with mTLS and todo-operator installed through the Helm provider (no local-exec).
provider "oci" {
  tenancy_ocid     = var.tenancy_ocid
  user_ocid        = var.user_ocid
  fingerprint      = var.fingerprint
  private_key_path = var.private_key_path
  region           = var.region
}

module "oke" {
  source  = "oracle-terraform-modules/oke/oci"
  version = "5.2.4"

  tenancy_id     = var.tenancy_ocid
  compartment_id = var.compartment_ocid
  region         = var.region
  providers      = { oci.home = oci }

  cluster_name                      = var.cluster_name
  kubernetes_version                = var.kubernetes_version
  cluster_type                      = "basic"
  cni_type                          = "flannel"
  control_plane_is_public           = length(var.api_endpoint_allowed_cidrs) > 0
  control_plane_allowed_cidrs       = var.api_endpoint_allowed_cidrs
  assign_public_ip_to_control_plane = length(var.api_endpoint_allowed_cidrs) > 0
  create_bastion                    = false
  create_operator                   = false
  load_balancers                    = "public"
  preferred_load_balancer           = "public"

  worker_pools = {
    always-free = {
      shape            = "VM.Standard.A1.Flex"
      ocpus            = 2
      memory           = 12
      size             = 2
      boot_volume_size = 50
    }
  }
}

resource "oci_logging_log_group" "todo" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.cluster_name}-logs"
}

resource "oci_logging_log" "todo" {
  display_name       = "${var.cluster_name}-application"
  log_group_id       = oci_logging_log_group.todo.id
  log_type           = "CUSTOM"
  is_enabled         = true
  retention_duration = 30
}

data "oci_containerengine_cluster_kube_config" "todo" {
  cluster_id = module.oke.cluster_id
}

locals {
  kubeconfig = yamldecode(data.oci_containerengine_cluster_kube_config.todo.content)
}

provider "helm" {
  kubernetes {
    host                   = local.kubeconfig.clusters[0].cluster.server
    cluster_ca_certificate = base64decode(local.kubeconfig.clusters[0].cluster["certificate-authority-data"])
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "oci"
      args        = ["ce", "cluster", "generate-token", "--cluster-id", module.oke.cluster_id, "--region", var.region]
    }
  }
}

module "todo" {
  source           = "../modules/todo-release"
  values_file      = "values-oke.yaml"
  image_repository = var.image_repository
  image_tag        = var.image_tag
}
