-- Count one push in a model's version counter, once per push ID: a
-- pipeline re-sent after a lost answer does not count it twice.
-- KEYS[1]   the version key
-- KEYS[2]   the push's ID key (same hash tag as the version key)
-- ARGV[1]   seconds to keep the ID key
-- Returns the version after the push.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return tonumber(redis.call('GET', KEYS[1]) or '0')
end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[1]))
return redis.call('INCR', KEYS[1])
