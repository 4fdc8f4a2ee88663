-- Atomically add scale * delta at (index, delta) pairs of one block, in the
-- order given (a repeated index adds again).
-- KEYS[1]  block key (a string of packed little-endian float32)
-- ARGV[1]  indices within the block, packed little-endian uint32, ascending
-- ARGV[2]  deltas, packed little-endian float32, one per index
-- ARGV[3]  scale (a decimal number)
-- ARGV[4]  the block's length in floats
-- Returns the number of pairs applied. Nothing is written on error.
local blk = redis.call('GET', KEYS[1])
if not blk then
  return redis.error_reply('ERR wren-ps: no block ' .. KEYS[1])
end
local n = tonumber(ARGV[4])
if #blk ~= 4 * n then
  return redis.error_reply('ERR wren-ps: block ' .. KEYS[1] .. ' holds ' .. #blk .. ' bytes, want ' .. 4 * n)
end
local ib, db = ARGV[1], ARGV[2]
local m = #db / 4
if #ib ~= #db or #db % 4 ~= 0 then
  return redis.error_reply('ERR wren-ps: indices and deltas differ in length')
end
local scale = tonumber(ARGV[3])
local C = 512
local idx, del = {}, {}
for s = 0, m - 1, C do
  local k = math.min(C, m - s)
  local a = { struct.unpack('<' .. string.rep('I4', k), ib, 4 * s + 1) }
  local b = { struct.unpack('<' .. string.rep('f', k), db, 4 * s + 1) }
  for i = 1, k do
    idx[s + i] = a[i]
    del[s + i] = b[i]
  end
end
for j = 1, m do
  if idx[j] >= n or (j > 1 and idx[j] < idx[j - 1]) then
    return redis.error_reply('ERR wren-ps: index ' .. idx[j] .. ' out of order or out of block ' .. KEYS[1])
  end
end
if m * 8 >= n then
  -- Dense enough: decode the whole block, update, encode.
  local w = {}
  for s = 0, n - 1, C do
    local k = math.min(C, n - s)
    local v = { struct.unpack('<' .. string.rep('f', k), blk, 4 * s + 1) }
    for i = 1, k do
      w[s + i] = v[i]
    end
  end
  for j = 1, m do
    local p = idx[j] + 1
    w[p] = w[p] + scale * del[j]
  end
  local out = {}
  for s = 0, n - 1, C do
    local k = math.min(C, n - s)
    out[#out + 1] = struct.pack('<' .. string.rep('f', k), unpack(w, s + 1, s + k))
  end
  redis.call('SET', KEYS[1], table.concat(out))
  return m
end
-- Sparse: touch only the indexed floats, and copy the rest between them.
local pieces, last = {}, 0
local j = 1
while j <= m do
  local p = idx[j]
  local v = struct.unpack('<f', blk, 4 * p + 1)
  while j <= m and idx[j] == p do
    v = v + scale * del[j]
    j = j + 1
  end
  pieces[#pieces + 1] = string.sub(blk, last + 1, 4 * p)
  pieces[#pieces + 1] = struct.pack('<f', v)
  last = 4 * p + 4
end
pieces[#pieces + 1] = string.sub(blk, last + 1)
redis.call('SET', KEYS[1], table.concat(pieces))
return m
