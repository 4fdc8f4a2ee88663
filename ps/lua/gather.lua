-- Read the values at some indices of one or more blocks (the blocks of one
-- pull that live on this server; one block under Redis Cluster) and return
-- them packed, in the order asked.
-- KEYS[j]   block key (a string of packed little-endian float32)
-- ARGV[1]   per block: how many indices it gives, packed little-endian uint32
-- ARGV[2]   per block: its length in floats, packed little-endian uint32
-- ARGV[3]   the indices within their blocks, block after block, packed
--           little-endian uint32
-- A block with few indices is read with one GETRANGE per index, one with
-- more with one GET (a call into Redis costs about what copying 4 KB
-- does); numbers are decoded one by one and encoded 64 per call.
-- Returns the values, packed little-endian float32.
local nb = #KEYS
local function u32s(s, n)
  local t = {}
  for lo = 0, n - 1, 1024 do
    local k = math.min(1024, n - lo)
    local a = { struct.unpack('<' .. string.rep('I4', k), s, 4 * lo + 1) }
    for i = 1, k do t[lo + i] = a[i] end
  end
  return t
end
if #ARGV[1] ~= 4 * nb or #ARGV[2] ~= 4 * nb or #ARGV[3] % 4 ~= 0 then
  return redis.error_reply('ERR wren-ps: gather arguments of the wrong length')
end
local cnt, len = u32s(ARGV[1], nb), u32s(ARGV[2], nb)
local m = #ARGV[3] / 4
local off = u32s(ARGV[3], m)
local vals, p = {}, 0
local unpack1, call = struct.unpack, redis.call
for j = 1, nb do
  local c, n, key = cnt[j], len[j], KEYS[j]
  if p + c > m then
    return redis.error_reply('ERR wren-ps: gather counts exceed the indices')
  end
  if c <= 4 then
    for q = p + 1, p + c do
      local o = off[q]
      if o >= n then
        return redis.error_reply('ERR wren-ps: index ' .. o .. ' out of block ' .. key)
      end
      local s = call('GETRANGE', key, 4 * o, 4 * o + 3)
      if #s ~= 4 then
        if #s == 0 and call('EXISTS', key) == 0 then
          return redis.error_reply('ERR wren-ps: no block ' .. key)
        end
        return redis.error_reply('ERR wren-ps: block ' .. key .. ' holds fewer bytes, want ' .. 4 * n)
      end
      vals[q] = unpack1('<f', s)
    end
  else
    local blk = call('GET', key)
    if not blk then
      return redis.error_reply('ERR wren-ps: no block ' .. key)
    end
    if #blk ~= 4 * n then
      return redis.error_reply('ERR wren-ps: block ' .. key .. ' holds ' .. #blk .. ' bytes, want ' .. 4 * n)
    end
    for q = p + 1, p + c do
      local o = off[q]
      if o >= n then
        return redis.error_reply('ERR wren-ps: index ' .. o .. ' out of block ' .. key)
      end
      vals[q] = unpack1('<f', blk, 4 * o + 1)
    end
  end
  p = p + c
end
if p ~= m then
  return redis.error_reply('ERR wren-ps: gather counts do not add up to the indices')
end
local out, F, q = {}, '<' .. string.rep('f', 64), 1
while q + 63 <= m do
  out[#out + 1] = struct.pack(F, unpack(vals, q, q + 63))
  q = q + 64
end
if q <= m then
  out[#out + 1] = struct.pack('<' .. string.rep('f', m - q + 1), unpack(vals, q, m))
end
return table.concat(out)
