package aws

import (
	"errors"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"

	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// permanentCodes are API error codes that retrying with the same
// credentials cannot fix.
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"AccessDeniedException":        true,
	"UnauthorizedOperation":        true,
	"AuthFailure":                  true,
	"InvalidClientTokenId":         true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"UnrecognizedClientException":  true,
	"OptInRequired":                true,
	"InvalidAccessKeyId.NotFound":  true,
	"AuthorizationHeaderMalformed": true,
}

// classify marks errors that retrying cannot fix as tasks.Permanent:
// credentials that cannot be had or are rejected, and access denied.
// Everything else (throttling past MaxAttempts, network errors, 5xx) is
// left for the queue to retry.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && permanentCodes[apiErr.ErrorCode()] {
		return tasks.Permanent(err)
	}
	var signErr *v4.SigningError
	if errors.As(err, &signErr) {
		return tasks.Permanent(err)
	}
	return err
}
