-- Atomically add scale * delta at (index, delta) pairs of one or more blocks
-- (the blocks of one sparse push that live on this server; one block under
-- Redis Cluster), packed: one call per shard. Pairs are applied in the order
-- given; a repeated index adds up in double precision and is rounded to
-- float32 once.
-- KEYS[j]        block key (a string of packed little-endian float32), j <= nb
-- KEYS[nb+1]     the model's version key, when ARGV[#ARGV] is 1: counted once
-- KEYS[#KEYS]    the push's ID key (same hash tag as the first block): a push
--                whose ID key exists was applied already, and is not again
-- ARGV[1]        scale (a decimal number)
-- ARGV[2]        per block: how many pairs it gets, packed little-endian uint32
-- ARGV[3]        per block: its length in floats, packed little-endian uint32
-- ARGV[4]        the indices within their blocks, block after block, each
--                block's ascending, packed little-endian uint32
-- ARGV[5]        the deltas, one per index, packed little-endian float32
-- ARGV[6]        seconds to keep the ID key
-- ARGV[7]        1 to count the push in the version key, else 0
-- Every block is checked before any is written: on error nothing changes.
-- A block with few pairs is updated in place (GETRANGE and SETRANGE per
-- index; its length is not read: a call into Redis costs about what
-- copying 4 KB does); one with
-- more is read, rebuilt around its changed values and written whole; one
-- touched densely is decoded and encoded 64 floats per call.
-- Returns the number of pairs applied, or -1 for a push applied before.
local scale = tonumber(ARGV[1])
local bump = tonumber(ARGV[7])
local nb = #KEYS - 1 - bump
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then
  return -1
end
local function unpackAll(fmt, s, n)
  local t = {}
  for lo = 0, n - 1, 1024 do
    local k = math.min(1024, n - lo)
    local a = { struct.unpack('<' .. string.rep(fmt, k), s, 4 * lo + 1) }
    for i = 1, k do t[lo + i] = a[i] end
  end
  return t
end
if #ARGV[2] ~= 4 * nb or #ARGV[3] ~= 4 * nb or #ARGV[4] ~= #ARGV[5] or #ARGV[4] % 4 ~= 0 then
  return redis.error_reply('ERR wren-ps: scatter arguments of the wrong length')
end
local cnt, len = unpackAll('I4', ARGV[2], nb), unpackAll('I4', ARGV[3], nb)
local m = #ARGV[4] / 4
local idx, del = unpackAll('I4', ARGV[4], m), unpackAll('f', ARGV[5], m)
local call = redis.call
local SMALL = 4
-- Check every block first.
local blks, p = {}, 0
for j = 1, nb do
  local c, n, key = cnt[j], len[j], KEYS[j]
  if p + c > m then
    return redis.error_reply('ERR wren-ps: scatter counts exceed the pairs')
  end
  local bytes = 4 * n
  if c <= SMALL then
    -- Read the old values now: a missing or short block fails here.
    local old = {}
    for q = p + 1, p + c do
      local s = call('GETRANGE', key, 4 * idx[q], 4 * idx[q] + 3)
      if #s ~= 4 then
        if #s == 0 and call('EXISTS', key) == 0 then
          return redis.error_reply('ERR wren-ps: no block ' .. key)
        end
        return redis.error_reply('ERR wren-ps: block ' .. key .. ' holds fewer bytes, want ' .. 4 * n)
      end
      old[q] = s
    end
    blks[j] = old
  else
    local blk = call('GET', key)
    if not blk then
      return redis.error_reply('ERR wren-ps: no block ' .. key)
    end
    blks[j], bytes = blk, #blk
  end
  if bytes ~= 4 * n then
    return redis.error_reply('ERR wren-ps: block ' .. key .. ' holds ' .. bytes .. ' bytes, want ' .. 4 * n)
  end
  for q = p + 1, p + c do
    if idx[q] >= n or (q > p + 1 and idx[q] < idx[q - 1]) then
      return redis.error_reply('ERR wren-ps: index ' .. idx[q] .. ' out of order or out of block ' .. key)
    end
  end
  p = p + c
end
if p ~= m then
  return redis.error_reply('ERR wren-ps: scatter counts do not add up to the pairs')
end
local unpack1, pack1, sub, concat = struct.unpack, struct.pack, string.sub, table.concat
local F = '<' .. string.rep('f', 64)
p = 0
for j = 1, nb do
  local c, n, key = cnt[j], len[j], KEYS[j]
  local q, e = p + 1, p + c
  if c <= SMALL then
    local old = blks[j]
    while q <= e do
      local o = idx[q]
      local v = unpack1('<f', old[q])
      while q <= e and idx[q] == o do
        v = v + scale * del[q]
        q = q + 1
      end
      call('SETRANGE', key, 4 * o, pack1('<f', v))
    end
  elseif c * 8 >= n and n % 64 == 0 then
    local w, bp = {}, 1
    local blk = blks[j]
    for s = 0, n - 1, 64 do
      local a = { unpack1(F, blk, bp) }
      for i = 1, 64 do w[s + i] = a[i] end
      bp = bp + 256
    end
    for r = q, e do
      local i = idx[r] + 1
      w[i] = w[i] + scale * del[r]
    end
    local out = {}
    for s = 0, n - 1, 64 do
      out[#out + 1] = pack1(F, unpack(w, s + 1, s + 64))
    end
    call('SET', key, concat(out))
  else
    local blk = blks[j]
    local pieces, np, last = {}, 0, 0
    while q <= e do
      local o = idx[q]
      local v = unpack1('<f', blk, 4 * o + 1)
      while q <= e and idx[q] == o do
        v = v + scale * del[q]
        q = q + 1
      end
      if 4 * o > last then
        np = np + 1
        pieces[np] = sub(blk, last + 1, 4 * o)
      end
      np = np + 1
      pieces[np] = pack1('<f', v)
      last = 4 * o + 4
    end
    pieces[np + 1] = sub(blk, last + 1)
    call('SET', key, concat(pieces))
  end
  p = e
end
call('SET', KEYS[#KEYS], '1', 'EX', tonumber(ARGV[6]))
if bump == 1 then
  call('INCR', KEYS[nb + 1])
end
return m
