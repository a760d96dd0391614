//go:build !linux

package disksteps

import (
	"context"
	"errors"
	"runtime"

	"github.com/imprint-osd/imprint/internal/sequence"
)

var errNotLinux = errors.New("disk steps run only in the Linux boot image (this agent is built for " + runtime.GOOS + ")")

// Format is the Format disk step (Linux only).
type Format struct{ D *Deps }

// ApplyOS is the Apply operating system step (Linux only).
type ApplyOS struct{ D *Deps }

// PrepareOS is the Prepare operating system step (Linux only).
type PrepareOS struct{ D *Deps }

// WholeDisk is Apply ChromeOS Flex and Apply IGEL image (Linux only).
type WholeDisk struct {
	D    *Deps
	What string
}

// Capture is the Capture image step (Linux only).
type Capture struct{ D *Deps }

// Run fails: not Linux.
func (Format) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// Run fails: not Linux.
func (ApplyOS) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// Run fails: not Linux.
func (PrepareOS) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// Run fails: not Linux.
func (WholeDisk) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// Run fails: not Linux.
func (Capture) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// MountRW is Linux only.
func MountRW(spec, tmpDir string) (string, func() error, error) { return "", nil, errNotLinux }

// MountWindows fails: not Linux.
func MountWindows(context.Context, string, string) (string, func() error, error) {
	return "", nil, errNotLinux
}

// InjectDriverPack is the Inject driver pack step (Linux only).
type InjectDriverPack struct{ D *Deps }

// Run fails: not Linux.
func (InjectDriverPack) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}

// InjectDrivers is the Inject drivers step (Linux only).
type InjectDrivers struct{ D *Deps }

// Run fails: not Linux.
func (InjectDrivers) Run(context.Context, *sequence.Env) (sequence.Result, error) {
	return sequence.Result{}, errNotLinux
}
