terraform {
  required_version = ">= 1.6.0"
  required_providers {
    oci  = { source = "oracle/oci", version = "= 6.35.0" }
    helm = { source = "hashicorp/helm", version = "= 2.17.0" }
  }
}
