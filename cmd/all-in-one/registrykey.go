package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

// registryCheckTimeout bounds the look at the registry's key ids at start.
const registryCheckTimeout = 10 * time.Second

// devRegistryKey returns the development REGISTRY_KEY kept in
// DATA_DIR/registry.key, made on first use, and the file's path. It refuses
// when the registry holds secrets sealed under key ids that key lacks (a
// new one has only "dev", which cannot open what an earlier "dev" key
// sealed either): the all-in-one would otherwise start with a key that
// reads none of them, and every such business would fail at its first
// conversion instead of at start.
func devRegistryKey(ctx context.Context, dataDir string, rdb redis.UniversalClient, log *zap.Logger) (key, file string, err error) {
	file = filepath.Join(dataDir, registry.DevKeyFile)
	_, statErr := os.Stat(file)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return "", "", fmt.Errorf("registry: development key: %w", statErr)
	}
	cctx, cancel := context.WithTimeout(ctx, registryCheckTimeout)
	defer cancel()
	sealed, err := registry.NewStore(rdb, nil).SealedKeyIDs(cctx)
	switch {
	case err != nil && !exists:
		return "", "", fmt.Errorf("registry: REGISTRY_KEY is not set, and the registry could not be checked for secrets sealed under other keys before making a development key: %w (set REGISTRY_KEY, or make the store reachable)", err)
	case err != nil:
		log.Warn("registry: could not check the key ids of the registry's secrets; using the development key", zap.Error(err))
	}
	have := map[string]bool{}
	if exists {
		v, _, err := registry.LoadOrCreateDevKey(dataDir)
		if err != nil {
			return "", "", err
		}
		k, err := registry.ParseKeyring(v)
		if err != nil {
			return "", "", fmt.Errorf("registry: %s: %w", file, err)
		}
		for _, id := range k.IDs() {
			have[id] = true
		}
	}
	var missing []string
	records := 0
	for id, n := range sealed {
		if !have[id] {
			missing = append(missing, id)
			records += n
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		lacks := "a new development key (id dev) could not open them"
		if exists {
			lacks = "the development key in " + file + " does not have them"
		}
		return "", "", fmt.Errorf("registry: REGISTRY_KEY is not set, but %d registry record(s) hold secrets sealed under key id(s) %s, and %s: set REGISTRY_KEY to a keyring with those ids (id:base64 key, comma-separated, current first), the one they were sealed with",
			records, strings.Join(missing, ", "), lacks)
	}
	key, created, err := registry.LoadOrCreateDevKey(dataDir)
	if err != nil {
		return "", "", fmt.Errorf("registry: development key: %w", err)
	}
	log.Warn("REGISTRY_KEY is not set: the registry's secrets are encrypted with a development key kept next to them; set REGISTRY_KEY in production",
		zap.String("file", file), zap.Bool("created", created))
	return key, file, nil
}
