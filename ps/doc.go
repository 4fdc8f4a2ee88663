// Package ps is wren's parameter server: models shared by stateless
// workers through Redis, updated atomically by server-side Lua scripts.
//
// A model is a named float32 vector split into fixed-size blocks (Options.BlockSize
// floats, 1024 by default). Each block is one Redis string of packed
// little-endian float32 under a key with its own hash tag
// ("wps:{name/7}:w"), so blocks spread over the shards (Options.Addrs,
// placed by hashing the tag, or the slots of a Redis Cluster) and a block
// never spans two. The model's metadata and version counter live under
// "wps:{name}:meta" and "wps:{name}:version".
//
// Pull and PullIndices fetch a range or a set of indices; Push and
// PushSparse run a Lua script per block (ps/lua/*.lua, embedded, run with
// EVALSHA) that adds scaled deltas atomically: a block is either fully
// updated or untouched, never half. Every request is split by shard and
// pipelined, one round trip per shard, the shards in parallel. Version
// counts the pushes applied; a Replica re-pulls when it falls more than K
// versions behind (bounded staleness). Checkpoint and Restore move a model
// to and from a blob store as numpy .npy.
//
// A push is applied at most once: each carries a random ID, and the script
// records it on the shard (Options.PushIDTTL), so a pipeline sent again
// after its answer was lost (by this client, which re-sends a pipeline whose
// connection failed up to twice, or by go-redis's cluster redirects)
// changes nothing the second time. A push that fails on the connection
// even so returns an error wrapping ErrUnknownOutcome: it may have been
// applied, and pushing it again may apply it twice.
//
// Without addresses, Open starts a local redis-server on a free loopback
// port, protected by a random password, and Close stops it.
package ps
