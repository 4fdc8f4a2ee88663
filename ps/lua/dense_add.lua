-- Atomically add scale * deltas to ranges of one or more blocks (the blocks
-- of one push that live on this server; one block under Redis Cluster).
-- KEYS[j]        block key (a string of packed little-endian float32)
-- ARGV[1]        scale (a decimal number)
-- ARGV[3j-1]     first float of block j's range, 0-based, within the block
-- ARGV[3j]       block j's length in floats
-- ARGV[3j+1]     block j's deltas, packed little-endian float32
-- Every block is checked before any is written: on error nothing changes.
-- Returns the number of floats updated.
local scale = tonumber(ARGV[1])
local blks = {}
for j = 1, #KEYS do
  local blk = redis.call('GET', KEYS[j])
  if not blk then
    return redis.error_reply('ERR wren-ps: no block ' .. KEYS[j])
  end
  local n = tonumber(ARGV[3 * j])
  if #blk ~= 4 * n then
    return redis.error_reply('ERR wren-ps: block ' .. KEYS[j] .. ' holds ' .. #blk .. ' bytes, want ' .. 4 * n)
  end
  local off, d = tonumber(ARGV[3 * j - 1]), ARGV[3 * j + 1]
  if off < 0 or #d % 4 ~= 0 or off + #d / 4 > n then
    return redis.error_reply('ERR wren-ps: range out of block ' .. KEYS[j])
  end
  blks[j] = blk
end
-- Decode and encode many floats per struct call: per-element calls are
-- several times slower.
local C = 1024
local total = 0
for j = 1, #KEYS do
  local blk, off, d = blks[j], tonumber(ARGV[3 * j - 1]), ARGV[3 * j + 1]
  local m = #d / 4
  local out = {}
  for s = 0, m - 1, C do
    local k = math.min(C, m - s)
    local fmt = '<' .. string.rep('f', k)
    local w = { struct.unpack(fmt, blk, 4 * (off + s) + 1) }
    local x = { struct.unpack(fmt, d, 4 * s + 1) }
    for i = 1, k do
      w[i] = w[i] + scale * x[i]
    end
    out[#out + 1] = struct.pack(fmt, unpack(w, 1, k))
  end
  redis.call('SETRANGE', KEYS[j], 4 * off, table.concat(out))
  total = total + m
end
return total
