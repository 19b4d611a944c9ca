-- Argo CD health of a todo.dev resource (Task, RecurringTask, Reminder), from its Ready
-- condition and observedGeneration. Installed as resource.customizations.health.todo.dev_<Kind>
-- (examples/gitops/argocd/argocd-cm.yaml); tests/manifests/test_gitops.py runs it in Lua 5.1,
-- the language of Argo CD's gopher-lua, against statuses the operator writes.
local hs = {}

local function ready_condition(status)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      return condition
    end
  end
  return nil
end

local ready = ready_condition(obj.status)
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile it"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration or ready.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see generation " .. generation
  return hs
end

hs.message = ready.reason
if ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.reason .. ": " .. ready.message
end
-- A refused spec (InvalidSpec, InvalidSchedule, a reminder of an InvalidTask) and a failed
-- reminder stay as they are until someone edits them: Degraded. Any other Ready=False (a
-- reminder whose CronJob is not made yet) is on its way: Progressing.
if ready.status == "True" then
  hs.status = "Healthy"
elseif string.sub(ready.reason, 1, 7) == "Invalid" or obj.status.phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
