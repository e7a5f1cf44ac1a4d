package registry

// Redis key layout. Every key carries the hash tag {registry}, so on Redis
// Cluster they all live in one slot and a change (record, index, phone map,
// version and change log) is one atomic script. The cost is that one shard
// holds the whole registry: about 1.4 KB a business (measured with
// 200-character tokens), so 70 MB for 50,000 businesses, and the read load is one GET a second per sender plus the
// cache misses.
//
//	{registry}:biz:<id>      hash: data (JSON, secrets sealed), phones (csv), created, updated (unix ms)
//	{registry}:index         sorted set of business ids, all score 0: lexicographic paging (ZRANGEBYLEX)
//	{registry}:phones        hash: phone_number_id -> business id
//	{registry}:version       counter, incremented by every create, replace and delete
//	{registry}:changes       sorted set: business id -> version of its latest change (the newest ChangeLogSize)
//	{registry}:changes:floor the highest version trimmed from changes; a cache older than it reloads everything
const (
	keyPrefix   = "{registry}:"
	keyIndex    = keyPrefix + "index"
	keyPhones   = keyPrefix + "phones"
	keyVersion  = keyPrefix + "version"
	keyChanges  = keyPrefix + "changes"
	keyFloor    = keyPrefix + "changes:floor"
	fieldData   = "data"
	fieldPhones = "phones"
	fieldCreate = "created"
	fieldUpdate = "updated"
)

// ChangeLogSize is how many changes {registry}:changes keeps: a cache that
// falls further behind than this (a sender cut off from Redis during a bulk
// import) drops all its entries instead of only the changed ones.
const ChangeLogSize = 10000

func bizKey(id string) string { return keyPrefix + "biz:" + id }

// putScript creates or replaces a record. ARGV: id, data, phones csv, now
// ms, mode ("create" fails on an existing record), change log size.
// Returns {1|0 created, version}, {-1, ""} when mode is create and the
// record exists, {-2, "phone,owner"} when a phone_number_id is taken.
const putScript = `
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and ARGV[5] == 'create' then return {-1, ''} end
local new = {}
for p in string.gmatch(ARGV[3], '[^,]+') do new[#new+1] = p end
for _, p in ipairs(new) do
  local owner = redis.call('HGET', KEYS[3], p)
  if owner and owner ~= ARGV[1] then return {-2, p .. ',' .. owner} end
end
if exists then
  local old = redis.call('HGET', KEYS[1], 'phones') or ''
  for p in string.gmatch(old, '[^,]+') do
    if redis.call('HGET', KEYS[3], p) == ARGV[1] then redis.call('HDEL', KEYS[3], p) end
  end
end
for _, p in ipairs(new) do redis.call('HSET', KEYS[3], p, ARGV[1]) end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'phones', ARGV[3], 'updated', ARGV[4])
if not exists then redis.call('HSET', KEYS[1], 'created', ARGV[4]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
` + logChange + `
if exists then return {0, tostring(v)} end
return {1, tostring(v)}
`

// deleteScript removes a record. ARGV: id, change log size (as ARGV[6] in
// logChange, so padded). Returns 0 when there was none, else the version.
const deleteScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[1], 'phones') or ''
for p in string.gmatch(old, '[^,]+') do
  if redis.call('HGET', KEYS[3], p) == ARGV[1] then redis.call('HDEL', KEYS[3], p) end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
` + logChange + `
return v
`

// logChange bumps the version, records the change and trims the log to
// ARGV[6] entries, remembering the highest trimmed version.
const logChange = `
local v = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[5], v, ARGV[1])
local n = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[6])
if n > 0 then
  local gone = redis.call('ZRANGE', KEYS[5], 0, n - 1, 'WITHSCORES')
  redis.call('SET', KEYS[6], gone[#gone])
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, n - 1)
end
`

// swapScript replaces a record's data only if it is still old (RotateKey).
const swapScript = `
if redis.call('HGET', KEYS[1], 'data') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
return 1
`

func scriptKeys(id string) []string {
	return []string{bizKey(id), keyIndex, keyPhones, keyVersion, keyChanges, keyFloor}
}
