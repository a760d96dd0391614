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
	b = append(b, "#!ipxe\n# Imprint boot script for "...)
	b = append(b, d.MAC...)
	b = append(b, " ("...)
	b = append(b, d.Arch...)
	b = append(b, ", "...)
	b = append(b, d.Platform...)
	if d.UUID != "" {
		b = append(b, ", "...)
		b = append(b, d.UUID...)
	}
	b = append(b, ')')
	if d.Menu {
		b = append(b, "\n\n:menu\nmenu Imprint - "...)
		b = append(b, d.MAC...)
		b = append(b, "\nitem deploy Deploy with Imprint\nitem local  Boot from local disk\nitem shell  iPXE shell\nchoose "...)
		if d.TimeoutMS != 0 {
			b = append(b, "--timeout "...)
			b = strconv.AppendInt(b, d.TimeoutMS, 10)
			b = append(b, ' ')
		}
		b = append(b, "--default "...)
		b = append(b, d.Default...)
		b = append(b, " selected || goto "...)
		b = append(b, d.Default...)
		b = append(b, "\ngoto ${selected}"...)
	} else {
		b = append(b, "\ngoto "...)
		b = append(b, d.Default...)
	}

	b = append(b, "\n\n:deploy\necho Imprint: loading the boot image for "...)
	b = append(b, d.Arch...)
	b = append(b, "\nkernel "...)
	b = append(b, d.BootURL...)
	b = append(b, "/images/"...)
	b = append(b, d.Arch...)
	b = append(b, "/vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200 imprint.server="...)
	b = append(b, d.PublicURL...)
	b = append(b, " imprint.ca="...)
	b = append(b, d.CAFingerprint...)
	b = append(b, " imprint.mac="...)
	b = append(b, d.MAC...)
	for _, a := range d.KernelArgs {
		b = append(b, ' ')
		b = append(b, a...)
	}
	b = append(b, " || goto failed\ninitrd "...)
	b = append(b, d.BootURL...)
	b = append(b, "/images/"...)
	b = append(b, d.Arch...)
	b = append(b, "/initrd.img || goto failed\nboot || goto failed\n"...)

	b = append(b, "\n:local\necho Imprint: booting from the local disk\n"...)
	if d.Platform == "efi" {
		b = append(b, "exit\n"...)
	} else {
		b = append(b, "sanboot --no-describe --drive 0x80 || goto failed\n"...)
	}

	// The shell and a failed boot go back to the menu when there is one.
	back, failBack := "exit", "exit 1"
	if d.Menu {
		back, failBack = "goto menu", "goto menu"
	}
	b = append(b, "\n:shell\necho Imprint: type exit to leave the iPXE shell\nshell\n"...)
	b = append(b, back...)
	b = append(b, "\n\n:failed\necho Imprint: boot failed (see the message above)\nprompt --key s --timeout 10000 Press s for the iPXE shell && shell\n"...)
	b = append(b, failBack...)
	return append(b, '\n')
}

// scriptBufs are the buffers stage-two scripts are appended to (a script
// is about 1 KiB).
var scriptBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
