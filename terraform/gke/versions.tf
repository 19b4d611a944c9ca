terraform {
  required_version = ">= 1.6.0"
  required_providers {
    google = { source = "hashicorp/google", version = "= 6.30.0" }
    helm   = { source = "hashicorp/helm", version = "= 2.17.0" }
  }
}
