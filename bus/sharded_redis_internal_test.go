package bus

import (
	"testing"

	"github.com/anchat/realtime/internal/redisslot"
)

// TestSlotTagsSpread: partition i's tag hashes into the i-th of n equal slot
// ranges, so partitions spread evenly over masters that own equal ranges.
func TestSlotTagsSpread(t *testing.T) {
	for _, n := range []int{1, 3, 128, 1000, slots} {
		tags := slotTags(n)
		if len(tags) != n {
			t.Fatalf("n=%d: %d tags", n, len(tags))
		}
		for i, tag := range tags {
			slot := int(redisslot.Of(tag))
			if got := slot * n / slots; got != i {
				t.Fatalf("n=%d: tag %d (%q) is in slot %d, range %d", n, i, tag, slot, got)
			}
		}
	}
	if a, b := slotTags(128), slotTags(128); a[17] != b[17] {
		t.Fatal("tags are not deterministic")
	}
}
