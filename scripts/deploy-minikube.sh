#!/usr/bin/env bash
# The whole system on Minikube, in one command, from a clean machine with minikube,
# kubectl, helm and the dapr CLI. Safe to run again: every step installs or upgrades.
#
# Choices:
# - Kafka: Strimzi (CNCF project, maintained operator and images, KRaft mode, no ZooKeeper).
#   Bitnami's Kafka chart is not used: its free images stopped being maintained in 2025.
# - PostgreSQL: the CloudNativePG operator (CNCF, maintained images, one-instance cluster
#   here; the same manifests scale to replicas with failover), not a hand-written StatefulSet.
# - Dapr components come from manifests/dapr; topics from scripts/create-kafka-topics.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE=${NAMESPACE:-todo}
PROFILE=${MINIKUBE_PROFILE:-todo}
STRIMZI_VERSION=${STRIMZI_VERSION:-0.45.0}
CNPG_VERSION=${CNPG_VERSION:-0.23.2}
DAPR_VERSION=${DAPR_VERSION:-1.15.4}

log() { printf '\n==> %s\n' "$*"; }

for cli in minikube kubectl helm dapr; do
  if ! command -v "$cli" >/dev/null 2>&1; then
    echo "deploy-minikube: '$cli' is not installed; install it first (see docs/DEPLOYMENT.md, Minikube)." >&2
    exit 1
  fi
done

log "Minikube (4 CPUs, 8 GB)"
if ! minikube status -p "$PROFILE" >/dev/null 2>&1; then
  minikube start -p "$PROFILE" --cpus=4 --memory=8g --cni=calico --addons=metrics-server
fi
kubectl config use-context "$PROFILE"

log "Dapr $DAPR_VERSION (mTLS on)"
if ! dapr status -k >/dev/null 2>&1; then
  dapr init -k --runtime-version "$DAPR_VERSION" --enable-mtls=true --wait
fi

log "Strimzi and a one-node Kafka (KRaft)"
helm repo add strimzi https://strimzi.io/charts/ >/dev/null
helm repo add cnpg https://cloudnative-pg.github.io/charts >/dev/null
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update >/dev/null
helm upgrade --install strimzi strimzi/strimzi-kafka-operator --version "$STRIMZI_VERSION" \
  --namespace kafka --create-namespace --set watchNamespaces="{kafka}" --wait
kubectl apply -n kafka -f - <<'YAML'
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaNodePool
metadata:
  name: dual
  labels: {strimzi.io/cluster: todo}
spec:
  replicas: 1
  roles: [controller, broker]
  storage: {type: ephemeral}
---
apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: todo
  annotations: {strimzi.io/node-pools: enabled, strimzi.io/kraft: enabled}
spec:
  kafka:
    listeners:
      - {name: plain, port: 9092, type: internal, tls: false}
    config:
      offsets.topic.replication.factor: 1
      transaction.state.log.replication.factor: 1
      transaction.state.log.min.isr: 1
  entityOperator:
    topicOperator: {}
YAML
kubectl wait -n kafka kafka/todo --for=condition=Ready --timeout=600s

log "CloudNativePG and a PostgreSQL cluster"
helm upgrade --install cnpg cnpg/cloudnative-pg --version "$CNPG_VERSION" \
  --namespace cnpg-system --create-namespace --wait
kubectl create namespace databases --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n databases -f - <<'YAML'
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: todo-db
spec:
  instances: 1
  storage: {size: 2Gi}
  bootstrap:
    initdb: {database: todo, owner: todo}
YAML
kubectl wait -n databases cluster/todo-db --for=condition=Ready --timeout=600s

log "Kafka topics"
scripts/create-kafka-topics.sh

log "Namespace $NAMESPACE, secrets, Dapr components"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
password=$(kubectl get secret -n databases todo-db-app -o jsonpath='{.data.password}' | base64 -d)
kubectl create secret generic todo-database -n "$NAMESPACE" \
  --from-literal=url="postgresql://todo:${password}@todo-db-rw.databases.svc:5432/todo" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl create secret generic todo-smtp -n "$NAMESPACE" \
  --from-literal=TODO_SMTP_HOST="mailpit.${NAMESPACE}.svc" --from-literal=TODO_SMTP_PORT=1025 \
  --from-literal=TODO_SMTP_FROM=todo@minikube.local \
  --dry-run=client -o yaml | kubectl apply -f -
# The API's token secret: made once, kept on later runs (tokens signed with it stay valid).
if ! kubectl get secret todo-operator-api-auth -n "$NAMESPACE" >/dev/null 2>&1; then
  kubectl create secret generic todo-operator-api-auth -n "$NAMESPACE" \
    --from-literal=jwt-secret="$(head -c 32 /dev/urandom | base64)"
fi
# Dapr's app API token: the API's sidecar sends it with each event delivery, the API checks it.
if ! kubectl get secret todo-dapr-app-token -n "$NAMESPACE" >/dev/null 2>&1; then
  kubectl create secret generic todo-dapr-app-token -n "$NAMESPACE" \
    --from-literal=token="$(head -c 32 /dev/urandom | base64)"
fi
# The Dapr resources carry no namespace: Dapr loads components from the app's own namespace.
# The in-cluster Kafka variant; not pubsub-kafka-managed.yaml (the same component for a managed
# Kafka) nor secretstore-oci-vault.yaml (OKE only).
kubectl apply -n "$NAMESPACE" -f manifests/dapr/configuration.yaml -f manifests/dapr/resiliency.yaml \
  -f manifests/dapr/secretstores.yaml -f manifests/dapr/pubsub-kafka.yaml
# Mailpit: an SMTP sink with a web UI, so reminders can be seen without a real mail server.
kubectl create deployment mailpit -n "$NAMESPACE" --image=axllent/mailpit:v1.21 --dry-run=client -o yaml | kubectl apply -f -
kubectl expose deployment mailpit -n "$NAMESPACE" --port=1025 --dry-run=client -o yaml | kubectl apply -f -

log "Prometheus, Grafana (kube-prometheus-stack) and Zipkin"
helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
  --namespace monitoring --create-namespace --set grafana.service.type=NodePort --wait --timeout 10m
# In namespace observability: where manifests/dapr/configuration.yaml sends the sidecars' spans.
kubectl apply -k observability/zipkin

log "The image, built inside Minikube"
minikube -p "$PROFILE" image build -t todo-operator:dev .

log "todo-operator"
helm upgrade --install todo-operator manifests/helm/todo-operator --namespace "$NAMESPACE" \
  -f manifests/helm/todo-operator/values-minikube.yaml --atomic --wait --timeout 10m

log "Checks"
kubectl wait -n "$NAMESPACE" pod -l app.kubernetes.io/instance=todo-operator --for=condition=Ready --timeout=300s
kubectl get components.dapr.io -n "$NAMESPACE"
kubectl get crd tasks.todo.dev recurringtasks.todo.dev reminders.todo.dev
kubectl get pods -n "$NAMESPACE"
helm test todo-operator -n "$NAMESPACE"

api_url=$(minikube -p "$PROFILE" service -n "$NAMESPACE" todo-operator-api --url)
grafana_url=$(minikube -p "$PROFILE" service -n monitoring kube-prometheus-stack-grafana --url)
cat <<DONE

todo-operator is running.
  API:      $api_url   (try: curl $api_url/healthz)
  Grafana:  $grafana_url   (user admin; password: kubectl get secret -n monitoring kube-prometheus-stack-grafana -o jsonpath='{.data.admin-password}' | base64 -d)
  Examples: kubectl apply -n $NAMESPACE -f examples/ && kubectl get todos -n $NAMESPACE
DONE
