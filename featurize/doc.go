// Package featurize is the paper's showcase map: decode, crop, scale and
// GIST-featurize a tree of images on stateless workers, writing feature
// shards to a blob store for a single-node reducer (package linear).
//
// GIST follows the LEAR C implementation exactly (GIST-SPEC.md): GIST and
// Gister compute it; Prepare centre-crops and scales; Decode reads JPEG, PNG,
// GIF, WebP, BMP, TIFF, PPM and PGM, honours EXIF orientation and refuses
// decompression bombs before decoding. Run featurizes an ImageNet-style tree
// (<class>/<image>) with wren maps, one shard per call, resumably;
// Synthesize writes such a tree of real JPEGs for tests and demos.
//
// A shard is written as shard-NNNNN.npy (float32, images x dims),
// shard-NNNNN.labels.npy (int32 class indices), shard-NNNNN.files.txt (the
// input keys, in order) and, last, shard-NNNNN.json (counts and failures),
// whose presence marks the shard complete. classes.txt lists the class
// names, one per line, in label order.
package featurize
