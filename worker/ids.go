package worker

import "crypto/md5"

var serializerSuffix = md5.Sum([]byte("serializer"))

// serializerID is the object id under which client source keeps its
// serializer: MD5(client id) followed by MD5("serializer").
func serializerID(source []byte) []byte {
	h := md5.Sum(source)
	out := make([]byte, 0, 32)
	out = append(out, h[:]...)
	return append(out, serializerSuffix[:]...)
}
