-- Argo CD health of a todo.dev resource (Task, RecurringTask, Reminder), from its Ready
-- condition and observedGeneration. Installed as resource.customizations.health.todo.dev_<Kind>
-- (examples/gitops/argocd/argocd-cm.yaml); tests/manifests/test_gitops.py runs it in Lua 5.1,
-- the language of Argo CD's gopher-lua, against statuses the operator writes.
local hs = {}

local function condition_of(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == type then
      return condition
    end
  end
  return nil
end

local ready = condition_of(obj.status, "Ready")
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
-- Stalled (beside Ready=False) is the operator saying only a person can change it: a refused
-- spec or a failed reminder. Flux reads the same condition through kstatus (Failed).
local stalled = condition_of(obj.status, "Stalled")
if ready.status == "True" then
  hs.status = "Healthy"
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
