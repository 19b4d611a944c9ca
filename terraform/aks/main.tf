provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}

resource "azurerm_resource_group" "todo" {
  name     = "${var.cluster_name}-rg"
  location = var.location
}

resource "azurerm_log_analytics_workspace" "todo" {
  name                = "${var.cluster_name}-logs"
  location            = azurerm_resource_group.todo.location
  resource_group_name = azurerm_resource_group.todo.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
}

resource "azurerm_kubernetes_cluster" "todo" {
  name                              = var.cluster_name
  location                          = azurerm_resource_group.todo.location
  resource_group_name               = azurerm_resource_group.todo.name
  dns_prefix                        = var.cluster_name
  sku_tier                          = "Standard"
  automatic_upgrade_channel         = "stable"
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true
  private_cluster_enabled           = false

  api_server_access_profile {
    authorized_ip_ranges = var.api_server_authorized_ip_ranges
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = var.node_vm_size
    node_count                   = var.node_count
    max_pods                     = 50
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 64
    host_encryption_enabled      = true
    only_critical_addons_enabled = true
    upgrade_settings {
      max_surge = "33%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin = "azure"
    network_policy = "azure"
  }

  oms_agent {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.todo.id
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "apps" {
  name                    = "apps"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.todo.id
  vm_size                 = var.node_vm_size
  node_count              = var.node_count
  max_pods                = 50
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 64
  host_encryption_enabled = true
}

provider "helm" {
  kubernetes {
    host                   = azurerm_kubernetes_cluster.todo.kube_config[0].host
    cluster_ca_certificate = base64decode(azurerm_kubernetes_cluster.todo.kube_config[0].cluster_ca_certificate)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
  }
}

module "todo" {
  source           = "../modules/todo-release"
  values_file      = "values-aks.yaml"
  image_repository = var.image_repository
  image_tag        = var.image_tag
}
