// Package aws collects AWS resources with aws-sdk-go-v2: regions, VPCs,
// subnets, EC2 instances, security groups, ELBv2 load balancers, S3
// buckets and network interfaces, with their links (instance in_vpc,
// in_subnet, has_security_group and behind_load_balancer; subnet in_vpc;
// network interface attached_to instance; ...).
//
// Every list call goes through the SDK's paginators, and every client of
// one region shares one retryer, so the adaptive retry mode's client-side
// rate limiter sees all the throttling of that region across concurrent
// tasks. Throttling errors are retried with backoff up to MaxAttempts;
// rejected credentials and access denied are tasks.Permanent.
//
// Not done here, deliberately: assuming roles into other accounts (the
// credentials decide the account; a task naming another one fails
// permanently), classic ELBs, and tag-based filtering on the API side.
package aws
