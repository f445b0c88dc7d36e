package main

// resolveModel turns a MODEL argument into a local folder: a path as is; a hub id through models/hub.
func resolveModel(ref string) (string, error) {
	return ref, nil
}
