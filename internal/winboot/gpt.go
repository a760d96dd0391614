package winboot

import (
	"encoding/binary"
	"fmt"
	"io"
)

// GPTPartition is one used entry of a GPT.
type GPTPartition struct {
	Number            int // from 1, the entry's place in the array
	Type, ID          GUID
	FirstLBA, LastLBA uint64
	SectorSize        int
}

// GPT is what the BCD and the firmware boot entry need from a disk's
// partition table.
type GPT struct {
	DiskID     GUID
	SectorSize int
	Partitions []GPTPartition
}

// Partition returns partition number n.
func (g *GPT) Partition(n int) (GPTPartition, error) {
	for _, p := range g.Partitions {
		if p.Number == n {
			return p, nil
		}
	}
	return GPTPartition{}, fmt.Errorf("gpt: no partition %d", n)
}

// ReadGPT reads the primary GPT of a disk (or disk image), trying 512- and
// 4096-byte sectors.
func ReadGPT(r io.ReaderAt) (*GPT, error) {
	le := binary.LittleEndian
	for _, ss := range []int{512, 4096} {
		hdr := make([]byte, 92)
		if _, err := r.ReadAt(hdr, int64(ss)); err != nil {
			continue
		}
		if string(hdr[:8]) != "EFI PART" {
			continue
		}
		g := &GPT{SectorSize: ss}
		copy(g.DiskID[:], hdr[56:72])
		arrayLBA, count, size := le.Uint64(hdr[72:]), le.Uint32(hdr[80:]), le.Uint32(hdr[84:])
		if size < 128 || count > 1024 {
			return nil, fmt.Errorf("gpt: entry size %d, count %d", size, count)
		}
		arr := make([]byte, int(count)*int(size))
		if _, err := r.ReadAt(arr, int64(arrayLBA)*int64(ss)); err != nil {
			return nil, fmt.Errorf("gpt: read partition entries: %w", err)
		}
		for i := 0; i < int(count); i++ {
			e := arr[i*int(size):]
			var p GPTPartition
			copy(p.Type[:], e[0:16])
			if p.Type.IsZero() {
				continue
			}
			copy(p.ID[:], e[16:32])
			p.Number, p.FirstLBA, p.LastLBA, p.SectorSize = i+1, le.Uint64(e[32:]), le.Uint64(e[40:]), ss
			g.Partitions = append(g.Partitions, p)
		}
		return g, nil
	}
	return nil, fmt.Errorf("gpt: no GPT header (not a GPT disk)")
}
