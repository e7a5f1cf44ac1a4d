-- Upsert ad clicks into packed contexts (see codec.go for the layout), all
-- the keys of one write in one call: the script's fixed cost in Redis (about
-- as much as its GET and SET together) is paid once per write, not per click.
-- KEYS[i] a context key; ARGV[i] its click packed as a context whose first
-- seen equals its click time; ARGV[#KEYS + 1] ttl in milliseconds. On Redis
-- Cluster the caller passes keys of one hash slot per call.
--
-- Byte 1 of a value is its kind (low four bits: 1 a context, 2 an id-change
-- alias) and flags (16: the business keeps the first touch; 32: no
-- ctwa_clid). The new click's flags carry its business's policy now.
--
-- The merge is commutative, associative and idempotent, so duplicates and
-- out-of-order deliveries (Meta retries, replays) converge to one state:
--   * a click with a ctwa_clid beats one without, under either policy;
--   * then, last touch: the latest click wins; first touch: the earliest;
--     on equal times the greater body wins bytewise, so the outcome does not
--     depend on arrival order;
--   * first seen is the minimum of all times;
--   * expiry: the key lives ttl after the most recent *recording* of its
--     winning click (SET PX when the new click wins, and under last touch also
--     on a click as new as the stored one; KEEPTTL otherwise). It is counted
--     from when we record, not from the click time, because replays of old
--     captures must still store. A first-touch context is therefore not kept
--     alive by later clicks: it lives ttl after its first click.
--   * an alias (the user's id changed to this one; the value names the
--     conversation's key): a click under the new id is later than the
--     conversation's (the id did not exist before), so under last touch it
--     replaces the alias as the conversation's context; under first touch
--     the alias stays, since the conversation has its first click. A click
--     id beats none here too (the alias carries its target's flag).
-- Returns the number of keys changed.
local ttl = ARGV[#KEYS + 1]

local function u48(s, i)
  local a, b, c, d, e, f = string.byte(s, i, i + 5)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

-- kind, first touch, no click id of a value's first byte
local function info(v)
  local b = string.byte(v, 1)
  return b % 16, math.floor(b / 16) % 2 == 1, math.floor(b / 32) % 2 == 1
end

-- greater compares byte strings without Lua's locale-dependent '<'.
local function greater(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

local function upsert(key, new)
  local old = redis.call('GET', key)
  local _, first, nnone = info(new)
  if old and #old >= 2 and info(old) == 2 then
    local _, _, onone = info(old)
    local replace = not first
    if nnone ~= onone then replace = onone end -- a click id beats none
    if not replace then return 0 end
    redis.call('SET', key, new, 'PX', ttl)
    return 1
  end
  local okind, _, onone = 0, false, false
  if old and #old >= 13 then okind, _, onone = info(old) end
  if okind ~= 1 then
    -- absent, or a format this script does not know: the new click replaces it
    redis.call('SET', key, new, 'PX', ttl)
    return 1
  end
  local nl, ol = u48(new, 2), u48(old, 2)
  local nb, ob = string.sub(new, 14), string.sub(old, 14)
  local wins, refresh
  if nnone ~= onone then
    wins = onone -- a click id beats none
    refresh = wins
  elseif first then
    wins = nl < ol or (nl == ol and nb ~= ob and greater(nb, ob))
    refresh = wins
  else
    wins = nl > ol or (nl == ol and nb ~= ob and greater(nb, ob))
    refresh = nl >= ol
  end
  local fs = string.sub(old, 8, 13)
  if u48(new, 8) < u48(old, 8) then fs = string.sub(new, 8, 13) end

  local v
  if wins then
    v = string.sub(new, 1, 7) .. fs .. nb
  else
    -- the stored click stays, under the policy the business has now
    local flags = 0
    if first then flags = 16 end
    if onone then flags = flags + 32 end
    v = string.char(1 + flags) .. string.sub(old, 2, 7) .. fs .. ob
  end
  if refresh then
    if v == old then
      redis.call('PEXPIRE', key, ttl)
    else
      redis.call('SET', key, v, 'PX', ttl)
    end
    return 1
  end
  if v ~= old then
    redis.call('SET', key, v, 'KEEPTTL')
    return 1
  end
  return 0
end

local changed = 0
for i, key in ipairs(KEYS) do
  changed = changed + upsert(key, ARGV[i])
end
return changed
