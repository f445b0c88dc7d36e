package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/lobanb/slider"
)

// exitError carries a command's exit code out of cobra's RunE; the command printed its messages.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// valueError is a flag or argument value a command refuses (exit 2): the message names the flag
// and the value, and what is wanted.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// badValue is a valueError.
func badValue(format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...)}
}

// want is one check of a flag's value: bad tells that the value is refused, want what is wanted.
type want struct {
	bad   bool
	flag  string
	value any
	want  string
}

// firstBad returns a valueError for the first refused value: "--steps -3: want …".
func firstBad(checks ...want) error {
	for _, c := range checks {
		if c.bad {
			return badValue("--%s %v: want %s", c.flag, c.value, c.want)
		}
	}
	return nil
}

// commandBody adapts a command to cobra's RunE: the positional arguments (paths or hub ids) get
// "~/" expanded, check (when not nil) validates the flags, and body's exit code becomes RunE's
// error (nil for 0).
func commandBody(check func() error, body func(args []string) int) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		expanded := make([]string, len(args))
		for i, a := range args {
			p, err := slider.ExpandHome(a)
			if err != nil {
				return badValue("%v", err)
			}
			expanded[i] = p
		}
		if code := body(expanded); code != 0 {
			return exitError{code}
		}
		return nil
	}
}

// exactArgs wants exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		wanted := "no arguments"
		if len(names) > 0 {
			wanted = strings.Join(names, " ")
		}
		got := "none"
		if len(args) > 0 {
			got = fmt.Sprintf("%d: %q", len(args), args)
		}
		return fmt.Errorf("want %s, got %s", wanted, got)
	}
}

// group makes cmd a command of commands: run alone it is a usage error naming the commands, and
// an unknown command is one too (cobra would print the help and exit 0).
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Name()
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q (want %s)", args[0], strings.Join(names, " or "))
		}
		return nil
	}
	cmd.RunE = func(*cobra.Command, []string) error {
		return errors.New("which one: " + strings.Join(names, " or ") + "?")
	}
	cmd.AddCommand(subs...)
	return cmd
}
