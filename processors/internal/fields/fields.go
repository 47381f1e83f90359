// Package fields compares and copies protobuf messages field by field, by
// proto field name. It is the contract behind changed_fields in commands
// and events: scenario detection names what differs, aggregates apply
// exactly those fields.
package fields

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Diff returns the proto names of the fields whose values differ between a
// and b, in field-number order. a and b must be the same message type; a
// nil message equals an empty one. Repeated fields compare in order.
func Diff(a, b proto.Message) []string {
	ra, rb := a.ProtoReflect(), b.ProtoReflect()
	var changed []string
	fds := ra.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if !ra.Get(fd).Equal(rb.Get(fd)) {
			changed = append(changed, string(fd.Name()))
		}
	}
	return changed
}

// Copy sets the named fields of dst to their values in src (clearing those
// unset in src). It changes nothing and returns an error naming the field
// when a name is not a field of the message.
func Copy(dst, src proto.Message, names []string) error {
	rd := dst.ProtoReflect()
	fds := make([]protoreflect.FieldDescriptor, 0, len(names))
	for _, name := range names {
		fd := rd.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Errorf("%s has no field %q", rd.Descriptor().FullName(), name)
		}
		fds = append(fds, fd)
	}
	// Values taken from a clone: dst must not share lists or messages with src.
	rs := proto.Clone(src).ProtoReflect()
	for _, fd := range fds {
		if rs.Has(fd) {
			rd.Set(fd, rs.Get(fd))
		} else {
			rd.Clear(fd)
		}
	}
	return nil
}
