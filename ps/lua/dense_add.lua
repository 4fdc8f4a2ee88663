-- Atomically add scale * deltas to a range of one block.
-- KEYS[1]  block key (a string of packed little-endian float32)
-- ARGV[1]  first float of the range, 0-based, within the block
-- ARGV[2]  deltas, packed little-endian float32
-- ARGV[3]  scale (a decimal number)
-- ARGV[4]  the block's length in floats
-- Returns the number of floats updated. Nothing is written on error.
local blk = redis.call('GET', KEYS[1])
if not blk then
  return redis.error_reply('ERR wren-ps: no block ' .. KEYS[1])
end
local n = tonumber(ARGV[4])
if #blk ~= 4 * n then
  return redis.error_reply('ERR wren-ps: block ' .. KEYS[1] .. ' holds ' .. #blk .. ' bytes, want ' .. 4 * n)
end
local off = tonumber(ARGV[1])
local d = ARGV[2]
local m = #d / 4
if off < 0 or off + m > n or #d % 4 ~= 0 then
  return redis.error_reply('ERR wren-ps: range out of block ' .. KEYS[1])
end
local scale = tonumber(ARGV[3])
-- Decode and encode many floats per struct call: per-element calls are
-- several times slower.
local C = 512
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
redis.call('SETRANGE', KEYS[1], 4 * off, table.concat(out))
return m
