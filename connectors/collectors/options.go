package collectors

import (
	"log/slog"
	"time"
)

// Options configure the collection task handlers.
type Options struct {
	// ChunkSize is the most resources in one discovery. Default 500: a
	// large collection becomes several records of a few hundred KiB.
	ChunkSize int
	// MaxChunkBytes caps a chunk's encoded resources, so a kind with large
	// resources stays below Kafka's default 1 MiB record limit. Default
	// 512 KiB. A single resource larger than this still goes out alone.
	MaxChunkBytes int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics defaults to unregistered metrics.
	Metrics *Metrics
	// Now stamps discoveries. Default time.Now.
	Now func() time.Time
}

// Defaults, in one place.
const (
	DefaultChunkSize     = 500
	DefaultMaxChunkBytes = 512 << 10
)

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxChunkBytes <= 0 {
		o.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
