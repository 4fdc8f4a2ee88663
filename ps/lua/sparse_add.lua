-- Atomically add scale * delta at (index, delta) pairs of one or more blocks
-- (the blocks of one push that live on this server; one under Redis
-- Cluster). Pairs are applied in the order given; a repeated index adds up
-- in double precision and is rounded to float32 once.
-- KEYS[j]        block key (a string of packed little-endian float32)
-- ARGV[1]        scale (a decimal number)
-- ARGV[3j-1]     block j's length in floats
-- ARGV[3j]       block j's indices within the block, packed little-endian uint32, ascending
-- ARGV[3j+1]     block j's deltas, packed little-endian float32, one per index
-- Every block is checked before any is written: on error nothing changes.
-- Returns the number of pairs applied.
local scale = tonumber(ARGV[1])
local C = 1024
local blks, idxs, dels = {}, {}, {}
for j = 1, #KEYS do
  local blk = redis.call('GET', KEYS[j])
  if not blk then
    return redis.error_reply('ERR wren-ps: no block ' .. KEYS[j])
  end
  local n = tonumber(ARGV[3 * j - 1])
  if #blk ~= 4 * n then
    return redis.error_reply('ERR wren-ps: block ' .. KEYS[j] .. ' holds ' .. #blk .. ' bytes, want ' .. 4 * n)
  end
  local ib, db = ARGV[3 * j], ARGV[3 * j + 1]
  if #ib ~= #db or #db % 4 ~= 0 then
    return redis.error_reply('ERR wren-ps: indices and deltas differ in length')
  end
  local m = #db / 4
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
  for i = 1, m do
    if idx[i] >= n or (i > 1 and idx[i] < idx[i - 1]) then
      return redis.error_reply('ERR wren-ps: index ' .. idx[i] .. ' out of order or out of block ' .. KEYS[j])
    end
  end
  blks[j], idxs[j], dels[j] = blk, idx, del
end
local total = 0
for j = 1, #KEYS do
  local blk, idx, del = blks[j], idxs[j], dels[j]
  local n, m = #blk / 4, #idx
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
    for i = 1, m do
      local p = idx[i] + 1
      w[p] = w[p] + scale * del[i]
    end
    local out = {}
    for s = 0, n - 1, C do
      local k = math.min(C, n - s)
      out[#out + 1] = struct.pack('<' .. string.rep('f', k), unpack(w, s + 1, s + k))
    end
    redis.call('SET', KEYS[j], table.concat(out))
  else
    -- Sparse: touch only the indexed floats, copy the bytes between them.
    local pieces, last, i = {}, 0, 1
    while i <= m do
      local p = idx[i]
      local v = struct.unpack('<f', blk, 4 * p + 1)
      while i <= m and idx[i] == p do
        v = v + scale * del[i]
        i = i + 1
      end
      pieces[#pieces + 1] = string.sub(blk, last + 1, 4 * p)
      pieces[#pieces + 1] = struct.pack('<f', v)
      last = 4 * p + 4
    end
    pieces[#pieces + 1] = string.sub(blk, last + 1)
    redis.call('SET', KEYS[j], table.concat(pieces))
  end
  total = total + m
end
return total
