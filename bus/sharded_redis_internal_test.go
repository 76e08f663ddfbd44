package bus

import "testing"

func TestCRC16(t *testing.T) {
	// The Redis Cluster specification's check value.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 = %#x, want 0x31c3", got)
	}
}

// TestSlotTagsSpread: partition i's tag hashes into the i-th of n equal slot
// ranges, so partitions spread evenly over masters that own equal ranges.
func TestSlotTagsSpread(t *testing.T) {
	for _, n := range []int{1, 3, 128, 1000, slots} {
		tags := slotTags(n)
		if len(tags) != n {
			t.Fatalf("n=%d: %d tags", n, len(tags))
		}
		for i, tag := range tags {
			slot := int(crc16(tag) % slots)
			if got := slot * n / slots; got != i {
				t.Fatalf("n=%d: tag %d (%q) is in slot %d, range %d", n, i, tag, slot, got)
			}
		}
	}
	if a, b := slotTags(128), slotTags(128); a[17] != b[17] {
		t.Fatal("tags are not deterministic")
	}
}
