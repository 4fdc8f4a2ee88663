package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/ui"
)

// uiCmd serves the dashboard of a store's jobs until interrupted.
func uiCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	store := fs.String("store", defaultStore(), "the store to show (URL or directory)")
	addr := fs.String("addr", "127.0.0.1:8470", "address to serve on; any but loopback needs a token")
	token := fs.String("token", os.Getenv("WREN_UI_TOKEN"), "the token a browser must present (default $WREN_UI_TOKEN; generated for a non-loopback address)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("ui: -addr %q: %w", *addr, err)
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if !loopback && *token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		*token = hex.EncodeToString(b)
	}
	st, err := wren.OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	srv := &http.Server{Handler: ui.New(ui.Options{Store: st, Token: *token}).Handler(), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + l.Addr().String() + "/"
	if *token != "" {
		url += "?token=" + *token
	}
	fmt.Printf("wren ui: the jobs of %s at %s (interrupt to stop)\n", st.URL(), url)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
