terraform {
  required_version = ">= 1.6.0"
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = "= 4.26.0" }
    helm    = { source = "hashicorp/helm", version = "= 2.17.0" }
  }
}
