package protocol

//go:generate go tool msgp -tests=false

// Object storage messages. A client sends ObjectRequest frames to the object
// storage server's ROUTER socket and receives ObjectResponse frames back; see
// docs/protocol.md ("Object storage") for the framing and the semantics.

// ObjectRequestType says what an ObjectRequest asks for. Values are stable.
type ObjectRequestType uint8

const (
	// ObjectSet creates or overwrites ObjectID with the payload frame that
	// follows the header frame.
	ObjectSet ObjectRequestType = 0
	// ObjectGet returns the content of ObjectID (at most MaxLength bytes when
	// MaxLength > 0), waiting until the object exists.
	ObjectGet ObjectRequestType = 1
	// ObjectDelete removes ObjectID.
	ObjectDelete ObjectRequestType = 2
	// ObjectDuplicate makes ObjectID refer to the content of SourceID,
	// waiting until SourceID exists.
	ObjectDuplicate ObjectRequestType = 3
	// ObjectStats asks for the server's counters.
	ObjectStats ObjectRequestType = 4
)

// objectRequestNames are the lower-case names of ObjectRequestType, by value.
var objectRequestNames = [...]string{
	ObjectSet:       "set",
	ObjectGet:       "get",
	ObjectDelete:    "delete",
	ObjectDuplicate: "duplicate",
	ObjectStats:     "stats",
}

// String returns the lower-case name used in logs and docs.
func (t ObjectRequestType) String() string {
	return enumName(objectRequestNames[:], uint8(t), "ObjectRequestType")
}

// ObjectResponseType says what an ObjectResponse reports. Values are stable.
type ObjectResponseType uint8

const (
	ObjectSetOK        ObjectResponseType = 0
	ObjectGetOK        ObjectResponseType = 1
	ObjectDelOK        ObjectResponseType = 2
	ObjectDelNotExists ObjectResponseType = 3
	ObjectDuplicateOK  ObjectResponseType = 4
	ObjectStatsOK      ObjectResponseType = 5
	ObjectError        ObjectResponseType = 6
	// ObjectNotFound answers a get or duplicate whose object (the source,
	// for a duplicate) did not appear within the server's wait deadline;
	// Error says which id and how long the request waited.
	ObjectNotFound ObjectResponseType = 7
)

// objectResponseNames are the names of ObjectResponseType, by value.
var objectResponseNames = [...]string{
	ObjectSetOK:        "setOK",
	ObjectGetOK:        "getOK",
	ObjectDelOK:        "delOK",
	ObjectDelNotExists: "delNotExists",
	ObjectDuplicateOK:  "duplicateOK",
	ObjectStatsOK:      "stats",
	ObjectError:        "error",
	ObjectNotFound:     "notFound",
}

// String returns the name used in logs and docs.
func (t ObjectResponseType) String() string {
	return enumName(objectResponseNames[:], uint8(t), "ObjectResponseType")
}

// Object id length limits enforced by the server. Scaler's object ids are 32
// bytes; anything from 1 to MaxObjectIDLength bytes is accepted.
const (
	MinObjectIDLength = 1
	MaxObjectIDLength = 64
)

// ObjectRequest is the header frame of a request to the object storage
// server. RequestID comes first so that a server can still recover it from a
// truncated header and answer with an error.
type ObjectRequest struct {
	RequestID     uint64            `msg:"request_id"`
	Type          ObjectRequestType `msg:"type"`
	ObjectID      []byte            `msg:"object_id"`
	SourceID      []byte            `msg:"source_id"`      // duplicate only
	MaxLength     uint64            `msg:"max_length"`     // get only; 0 = whole object
	PayloadLength uint64            `msg:"payload_length"` // set only; length of the payload frame
}

// ObjectResponse is the header frame of a reply from the object storage
// server. A getOK with PayloadLength > 0 is followed by one payload frame.
type ObjectResponse struct {
	RequestID     uint64             `msg:"request_id"` // echoes ObjectRequest.RequestID
	Type          ObjectResponseType `msg:"type"`
	ObjectID      []byte             `msg:"object_id"` // echoes ObjectRequest.ObjectID
	PayloadLength uint64             `msg:"payload_length"`
	Error         string             `msg:"error"` // error and notFound only

	// Stats only.
	Objects         uint64 `msg:"objects"`          // object ids stored
	Bytes           uint64 `msg:"bytes"`            // bytes of distinct contents held
	UniqueContents  uint64 `msg:"unique_contents"`  // distinct contents held
	WaitingRequests uint64 `msg:"waiting_requests"` // parked get and duplicate requests
	MaxMemory       uint64 `msg:"max_memory"`       // configured limit, 0 = unlimited
}
