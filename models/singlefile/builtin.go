package singlefile

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// A single file holds weights only. What a pipeline needs besides them when nothing else is given:
// the built-in configs of its kind (BuiltinConfig), the hub scheduler config of that kind (below)
// and the tokenizer of the kind's reference repository (HubConfigRepo; fetched by the caller,
// because it is not LOBA's to ship).

// The scheduler configs of the reference repositories, verbatim hub files (so not in the
// hubJSON format TestSingleFileConfigFiles checks for configs/*.json):
// runwayml/stable-diffusion-v1-5 @ 1d0c4ebf scheduler/scheduler_config.json (PNDMScheduler) and
// stabilityai/stable-diffusion-xl-base-1.0 @ 46216598 (EulerDiscreteScheduler).
//
//go:embed configs/scheduler/*.json
var schedulerFS embed.FS

// hubConfigRepos are the repositories diffusers' from_single_file takes the configs, tokenizers and
// scheduler of a kind from (DIFFUSERS_DEFAULT_PIPELINE_PATHS "v1" and "xl_base"):
// stable-diffusion-v1-5/stable-diffusion-v1-5 is the re-upload of runwayml/stable-diffusion-v1-5.
var hubConfigRepos = map[string]string{
	KindSD15:     "stable-diffusion-v1-5/stable-diffusion-v1-5",
	KindSDXLBase: "stabilityai/stable-diffusion-xl-base-1.0",
}

// HubConfigRepo is the hub repository whose tokenizer/ (and tokenizer_2/) a single file of kind is
// used with when no tokenizer is given, as diffusers' from_single_file does.
func HubConfigRepo(kind string) (string, error) {
	repo, ok := hubConfigRepos[kind]
	if !ok {
		return "", unknownKind(kind)
	}
	return repo, nil
}

// BuiltinSchedulerConfig returns the verbatim hub scheduler_config.json of kind: SD1.5's
// PNDMScheduler, SDXL base's EulerDiscreteScheduler.
func BuiltinSchedulerConfig(kind string) ([]byte, error) {
	if _, ok := kindTextEncoders[kind]; !ok {
		return nil, unknownKind(kind)
	}
	return schedulerFS.ReadFile("configs/scheduler/" + kind + ".json")
}

// BuiltinConfigFiles lists the files of the built-in config folder of kind, by path inside the
// folder: <component>/config.json for the UNet, the VAE and the text encoder(s) (BuiltinConfig)
// and scheduler/scheduler_config.json (BuiltinSchedulerConfig). There is no tokenizer.
func BuiltinConfigFiles(kind string) (map[string][]byte, error) {
	sched, err := BuiltinSchedulerConfig(kind)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"scheduler/scheduler_config.json": sched}
	for _, comp := range components(kind) {
		b, err := BuiltinConfig(kind, comp)
		if err != nil {
			return nil, err
		}
		files[comp+"/config.json"] = b
	}
	return files, nil
}

// BuiltinConfigDir returns the built-in config folder of kind (BuiltinConfigFiles) on disk,
// written once into the user cache (<cache>/loba/singlefile-<kind>-<content hash>, the temporary
// folder when there is no user cache): the config folder of a single file that comes with none.
func BuiltinConfigDir(kind string) (string, error) {
	files, err := BuiltinConfigFiles(kind)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s %d\n", name, len(files[name]))
		h.Write(files[name])
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "loba", "singlefile-"+kind+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	for _, name := range names {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if _, err := os.Stat(path); err == nil {
			continue // written before: the folder name is the content's hash
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("singlefile: writing the built-in %s configs: %w", kind, err)
		}
		if err := atomicfile.WriteFile(path, files[name]); err != nil {
			return "", fmt.Errorf("singlefile: writing the built-in %s configs: %w", kind, err)
		}
	}
	return dir, nil
}
