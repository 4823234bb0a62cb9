package protocol

// Golden values for the object storage messages (storage.go). Every field is
// non-zero, though no real request or reply sets all of them at once.

func init() {
	addGolden(&ObjectRequest{
		RequestID:     0x0102030405060708,
		Type:          ObjectDuplicate,
		ObjectID:      gObjectID(1),
		SourceID:      gObjectID(2),
		MaxLength:     1 << 20,
		PayloadLength: 512<<20 + 300,
	})
	addGolden(&ObjectResponse{
		RequestID:       0x0102030405060708,
		Type:            ObjectStatsOK,
		ObjectID:        gObjectID(1),
		PayloadLength:   512<<20 + 300,
		Error:           "set refused: storing 300 bytes would exceed the memory limit of 1024 bytes (900 bytes in use)",
		Objects:         3,
		Bytes:           4096,
		UniqueContents:  2,
		WaitingRequests: 5,
		MaxMemory:       1 << 30,
	})
}
