package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// ListBuckets takes 1 to 10000 buckets a page.
const s3MinPage, s3MaxPage = 1, 10000

// collectBuckets lists the account's buckets (an account-wide call) and
// reads each bucket's region and tags in that region.
func collectBuckets(ctx context.Context, s scope) ([]payload.Resource, error) {
	var rs []payload.Resource
	pages := s3.NewListBucketsPaginator(s.s3, &s3.ListBucketsInput{MaxBuckets: aws.Int32(s.cfg.pageSize(s3MinPage, s3MaxPage))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list buckets: %w", err)
		}
		for _, b := range page.Buckets {
			name := aws.ToString(b.Name)
			region := aws.ToString(b.BucketRegion)
			if region == "" {
				if region, err = bucketRegion(ctx, s, name); err != nil {
					return nil, err
				}
			}
			cl, err := s.in(ctx, region)
			if err != nil {
				return nil, err
			}
			a := attrs{}
			tags, err := bucketTags(ctx, cl.s3, name)
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) && permanentCodes[apiErr.ErrorCode()] {
				// A bucket policy may deny reading its tags to everyone
				// else: report the bucket without them rather than fail
				// the whole collection.
				a.str("tags_error", apiErr.ErrorCode())
			} else if err != nil {
				return nil, err
			}
			a.str("region", region)
			a.time("creation_date", b.CreationDate)
			a.str("arn", "arn:aws:s3:::"+name)
			rs = append(rs, payload.Resource{ID: name, Name: name, Tags: tags, Attributes: a})
		}
	}
	return rs, nil
}

func bucketRegion(ctx context.Context, s scope, name string) (string, error) {
	out, err := s.s3.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("get location of bucket %s: %w", name, err)
	}
	// An empty location constraint is S3's oldest region.
	if out.LocationConstraint == "" {
		return "us-east-1", nil
	}
	return string(out.LocationConstraint), nil
}

func bucketTags(ctx context.Context, c *s3.Client, name string) (map[string]string, error) {
	out, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(name)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchTagSet" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get tags of bucket %s: %w", name, err)
	}
	if len(out.TagSet) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m, nil
}
