// Placeholder: being written (issue 8).
int main() { return 0; }
