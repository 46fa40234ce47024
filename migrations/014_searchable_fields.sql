-- Runs are found (--where) by the settings of the loss terms they ran: a
-- term turned off (weight 0) keeps its weight alone, not the settings it
-- was filled with (common/spec_fields.h SearchableFields).
DELETE FROM run_fields
WHERE path IN ('losses.ikd.temperature', 'losses.ikd.scale_by_tau_squared')
  AND run_id IN (SELECT run_id FROM run_fields
                 WHERE path = 'losses.ikd.weight' AND value = '0');
