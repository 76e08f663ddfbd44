// Package redisslot is Redis Cluster's key hashing (the Redis Cluster
// specification, "Key distribution model"): CRC-16/XMODEM of the key, or of
// its hash tag, modulo 16384.
//
//	slot := redisslot.Of("rt:{chat:c1}:h") // the slot of "chat:c1"
package redisslot

import "strings"

// Count is the number of hash slots.
const Count = 16384

// Of is key's hash slot; a non-empty {tag} in the key is hashed instead of
// the whole key.
func Of(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return CRC16(key) % Count
}

// CRC16 is the CRC-16/XMODEM of s, Redis Cluster's key hash.
func CRC16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
