package ps_test

import "github.com/wrenml/wren/blob"

func blobOpts() blob.PutOptions { return blob.PutOptions{} }
