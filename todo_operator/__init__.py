"""todo-operator: todo tasks, recurring tasks and reminders as Kubernetes custom resources."""
