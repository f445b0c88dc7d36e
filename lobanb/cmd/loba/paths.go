package main

import (
	"github.com/spf13/pflag"

	"github.com/loba-dev/loba/lobanb/slider"
)

// pathValue is a path flag's value: "~/" is expanded when the flag is set.
type pathValue struct{ p *string }

func (v pathValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v pathValue) Set(s string) error {
	p, err := slider.ExpandHome(s)
	if err != nil {
		return err
	}
	*v.p = p
	return nil
}

func (v pathValue) Type() string { return "path" }

// pathFlag registers a path flag (its default def is used as it is). As for every pflag usage, a
// `NAME` in backquotes names the value in the help ("--out DIR"); the backquotes are not shown.
func pathFlag(f *pflag.FlagSet, p *string, name, def, usage string) {
	*p = def
	f.Var(pathValue{p}, name, usage)
}
