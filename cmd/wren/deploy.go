package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/worker"
)

// deployCmd runs the deploy verb of a backend: -backend NAME, else the
// configured one, else the one backend that has a deploy verb.
func deployCmd(ctx context.Context, args []string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	name, explicit := cfg.Backend, cfg.Source(config.KeyBackend) != "default"
	if len(args) >= 2 && (args[0] == "-backend" || args[0] == "--backend") {
		name, args, explicit = args[1], args[2:], true
	} else if len(args) >= 1 && strings.HasPrefix(args[0], "-backend=") {
		name, args, explicit = strings.TrimPrefix(args[0], "-backend="), args[1:], true
	}
	t, ok := worker.LookupBackend(name)
	if !ok {
		return fmt.Errorf("deploy: no backend %q", name)
	}
	if t.Deploy == nil {
		var with []worker.BackendType
		for _, b := range worker.BackendTypes() {
			if b.Deploy != nil {
				with = append(with, b)
			}
		}
		if len(with) != 1 || explicit {
			return fmt.Errorf("deploy: the %s backend has nothing to deploy (wren deploy -backend NAME)", name)
		}
		t = with[0]
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help") {
		return flag.ErrHelp
	}
	return t.Deploy(ctx, cfg.BackendSettings(t.Name), cfg.Store, args, os.Stdout)
}
