#!/usr/bin/env bash
# Create the event topics and their dead-letter topics (idempotent).
# 12 partitions each: Kafka partitions by the owner (partitionKey), so up to
# 12 consumers share a topic while each user's events stay in order.
# Usage: BOOTSTRAP=kafka:9092 scripts/create-kafka-topics.sh [--command-config client.properties]
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-localhost:9092}"
PARTITIONS="${PARTITIONS:-12}"
REPLICATION="${REPLICATION:-3}"
KAFKA_TOPICS="${KAFKA_TOPICS:-kafka-topics.sh}"

day=$((24 * 60 * 60 * 1000))
# topic  retention (ms): task events for a month, reminders a week, live updates a day, dead letters a month.
topics=(
  "task-events $((30 * day))"
  "reminders $((7 * day))"
  "task-updates $((1 * day))"
  "task-events-dlq $((30 * day))"
  "reminders-dlq $((30 * day))"
  "task-updates-dlq $((30 * day))"
)

for entry in "${topics[@]}"; do
  read -r topic retention <<<"$entry"
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" "$@" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config "retention.ms=$retention" --config "min.insync.replicas=$(( REPLICATION > 1 ? 2 : 1 ))"
  echo "topic $topic: $PARTITIONS partitions, retention ${retention} ms"
done
