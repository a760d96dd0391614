package pe

import (
	"os"

	"golang.org/x/sys/unix"
)

// LoadModules loads the kernel modules named in list (the text of
// /etc/imprint/modules, see ParseModuleList) from below root (for example
// /lib/modules/6.1.0-56-amd64), in order. Plain .ko files go through
// finit_module; .ko.xz, .ko.zst and .ko.gz are decompressed in memory and
// go through init_module. A module already loaded counts as loaded. One
// module failing does not stop the rest: loaded lists what is in the
// kernel, and err joins one error per module that failed (log it and go
// on; a missing NIC driver shows up later as no interface).
func LoadModules(root, list string) (loaded []string, err error) {
	return loadModules(sysModules{}, root, list)
}

type sysModules struct{}

func (sysModules) finitModule(f *os.File) error {
	return unix.FinitModule(int(f.Fd()), "", 0)
}

func (sysModules) initModule(image []byte) error {
	return unix.InitModule(image, "")
}
