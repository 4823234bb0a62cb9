module github.com/opengris/scaler

go 1.26.8

require (
	// transport/zmqhandle.go reads zmq4.Socket's unexported soc field; checked against v1.4.0
	// (TestSocketHandleLayout, TestZMQ4VersionPinned): read the new layout before changing this.
	github.com/pebbe/zmq4 v1.4.0
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/rs/zerolog v1.35.1
	github.com/tinylib/msgp v1.6.5
	github.com/urfave/cli/v2 v2.27.7
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/mod v0.18.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
	golang.org/x/tools v0.22.0 // indirect
)

tool github.com/tinylib/msgp
