package hub

import (
	"os"
	"path/filepath"
	"strings"
)

// Environment variables read by this package, as in huggingface_hub's constants.py.
const (
	EnvHome       = "HF_HOME"        // default ${XDG_CACHE_HOME:-~/.cache}/huggingface
	EnvHubCache   = "HF_HUB_CACHE"   // default $HF_HOME/hub
	EnvToken      = "HF_TOKEN"       // access token
	EnvTokenPath  = "HF_TOKEN_PATH"  // default $HF_HOME/token
	EnvEndpoint   = "HF_ENDPOINT"    // default https://huggingface.co
	EnvHubOffline = "HF_HUB_OFFLINE" // 1/true/yes/on: no network
	// EnvEtagTimeout bounds each metadata request, in seconds (default 10): see Options.MetadataTimeout.
	EnvEtagTimeout = "HF_HUB_ETAG_TIMEOUT"
	// EnvDownloadTimeout is the longest a download may stall, in seconds (default 10): see
	// Options.DownloadTimeout.
	EnvDownloadTimeout = "HF_HUB_DOWNLOAD_TIMEOUT"
	envLegacyHub       = "HUGGINGFACE_HUB_CACHE"
	envLegacyTok       = "HUGGING_FACE_HUB_TOKEN"
	envXDGCache        = "XDG_CACHE_HOME"
	tokenFileName      = "token"
)

// HomeDir is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func HomeDir() string {
	if h := os.Getenv(EnvHome); h != "" {
		return expandHome(h)
	}
	if x := os.Getenv(envXDGCache); x != "" {
		return filepath.Join(expandHome(x), "huggingface")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "huggingface")
}

// CacheDir is the hub cache folder: $HF_HUB_CACHE, else the legacy $HUGGINGFACE_HUB_CACHE, else
// HomeDir()/hub.
func CacheDir() string {
	if c := os.Getenv(EnvHubCache); c != "" {
		return expandHome(c)
	}
	if c := os.Getenv(envLegacyHub); c != "" {
		return expandHome(c)
	}
	return filepath.Join(HomeDir(), "hub")
}

// OfflineFromEnv reports whether $HF_HUB_OFFLINE is set to 1, true, yes or on (any case).
func OfflineFromEnv() bool {
	return isTrue(os.Getenv(EnvHubOffline))
}

// TokenFromEnv returns $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN, else the content of the token file
// ($HF_TOKEN_PATH, default HomeDir()/token) trimmed of spaces, else "".
func TokenFromEnv() string {
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t
	}
	if t := strings.TrimSpace(os.Getenv(envLegacyTok)); t != "" {
		return t
	}
	path := os.Getenv(EnvTokenPath)
	if path == "" {
		path = filepath.Join(HomeDir(), tokenFileName)
	}
	b, err := os.ReadFile(expandHome(path))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// EndpointFromEnv returns $HF_ENDPOINT without a trailing "/", else DefaultEndpoint.
func EndpointFromEnv() string {
	if e := strings.TrimRight(os.Getenv(EnvEndpoint), "/"); e != "" {
		return e
	}
	return DefaultEndpoint
}

func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}
