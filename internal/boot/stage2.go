package boot

import (
	"strconv"
	"sync"
)

// appendStage2 appends the per-machine iPXE script for d to b. It is
// written out rather than a text/template because every network boot
// renders it: a template walk cost an eighth of the boot port's CPU at
// thousands of boots a second, appending costs next to nothing. Every
// value in d is validated before (see Handler.machineData), and the
// golden files testdata/stage2-*.ipxe pin every branch.
func appendStage2(b []byte, d *stage2Data) []byte {
	b = cat(b, "#!ipxe\n# Imprint boot script for ", d.MAC, " (", d.Arch, ", ", d.Platform)
	if d.UUID != "" {
		b = cat(b, ", ", d.UUID)
	}
	b = append(b, ')')
	if d.Menu {
		b = cat(b, "\n\n:menu\nmenu Imprint - ", d.MAC,
			"\nitem deploy Deploy with Imprint\nitem local  Boot from local disk\nitem shell  iPXE shell\nchoose ")
		if d.TimeoutMS != 0 {
			b = strconv.AppendInt(append(b, "--timeout "...), d.TimeoutMS, 10)
			b = append(b, ' ')
		}
		b = cat(b, "--default ", d.Default, " selected || goto ", d.Default, "\ngoto ${selected}")
	} else {
		b = cat(b, "\ngoto ", d.Default)
	}

	b = cat(b, "\n\n:deploy\necho Imprint: loading the boot image for ", d.Arch,
		"\nkernel ", d.BootURL, "/images/", d.Arch, "/vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200",
		" imprint.server=", d.PublicURL, " imprint.ca=", d.CAFingerprint, " imprint.mac=", d.MAC)
	for _, a := range d.KernelArgs {
		b = cat(b, " ", a)
	}
	b = cat(b, " || goto failed\ninitrd ", d.BootURL, "/images/", d.Arch, "/initrd.img || goto failed\nboot || goto failed\n")

	b = cat(b, "\n:local\necho Imprint: booting from the local disk\n")
	if d.Platform == "efi" {
		b = cat(b, "exit\n")
	} else {
		b = cat(b, "sanboot --no-describe --drive 0x80 || goto failed\n")
	}

	// The shell and a failed boot go back to the menu when there is one.
	back, failBack := "exit", "exit 1"
	if d.Menu {
		back, failBack = "goto menu", "goto menu"
	}
	return cat(b, "\n:shell\necho Imprint: type exit to leave the iPXE shell\nshell\n", back,
		"\n\n:failed\necho Imprint: boot failed (see the message above)\nprompt --key s --timeout 10000 Press s for the iPXE shell && shell\n",
		failBack, "\n")
}

// cat appends each of parts to b.
func cat(b []byte, parts ...string) []byte {
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// scriptBufs are the buffers stage-two scripts are appended to (a script
// is about 1 KiB).
var scriptBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
